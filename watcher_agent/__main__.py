"""`python -m watcher_agent`."""

from watcher_agent.main import main

raise SystemExit(main())
