"""API v1: thin handlers (parse, call a service, render), all behind one authorization."""
