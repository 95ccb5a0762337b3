"""``python -m bench storage`` at a tiny size: every shape stores every reading, figures are reported."""

from __future__ import annotations

from bench import storage


def test_storage_bench_measures_every_shape_and_stores_every_value() -> None:
    out = storage.run(storage.parser().parse_args(["--devices", "3", "--runs", "1"]))
    assert out["readings"] == 3 * 288 * len(storage.COLS) and out["wide_rows"] == 3 * 288
    assert set(out["shapes"]) == {"narrow_heap", "narrow_pk", "narrow_pk_trigger", "wide_heap", "wide_pk",
                                  "wide_pk_trigger"}
    assert all(s["readings_per_s"] > 0 for s in out["shapes"].values())
    assert out["wide_over_narrow_indexed"] > 0
