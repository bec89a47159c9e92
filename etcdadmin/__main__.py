"""`python -m etcdadmin`."""

from etcdadmin.app import main

raise SystemExit(main())
