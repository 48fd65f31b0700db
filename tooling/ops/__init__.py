"""The operator CLI (`pleo-scope-ops`): status, list, retrigger and verify, on the local stack
or on a deployed stack, through the same adapters as the function (`pleo_scope.aws`)."""
