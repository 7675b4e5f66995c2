"""Request, response and catalogue models of the REST API (requests, responses, catalogue)."""
