"""How a sandbox runs on this machine: isolation under bubblewrap (`runner`), its files,
image roots as overlays, and the server's side of the agent inside it (`agent_client`)."""
