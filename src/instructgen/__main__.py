from instructgen.cli import main

raise SystemExit(main())
