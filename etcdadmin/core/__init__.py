"""The Qt-free core shared by the desktop client, the CLI and the watcher agent."""
