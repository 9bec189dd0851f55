"""Pure rules: no HTTP, no Airflow context, no sleeping. Hooks, operators and triggers do the I/O."""
