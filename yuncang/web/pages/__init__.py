"""Page routers (zh-CN first, English available); each is listed in :mod:`yuncang.web.main`."""
