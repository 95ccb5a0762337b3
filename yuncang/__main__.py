from yuncang.cli import main

raise SystemExit(main())
