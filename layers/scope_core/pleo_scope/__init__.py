"""Shared core of pleo-export-scope: Pleo client, page walk, scope building and AWS stores."""
