// Package procs manages the processes a benchmark starts and reads their cost from /proc: it
// starts long-running processes in process groups of their own with their output in log files,
// stops them all (SIGTERM, then SIGKILL), runs load tools to completion, and reads CPU time,
// memory and per-core busy time. It is Linux-only.
package procs
