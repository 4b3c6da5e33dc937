"""failfirst: a failure-mode lab for background job processing."""
