"""Scripts the tests run in processes of their own (to kill them)."""
