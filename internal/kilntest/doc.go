// Package kilntest is the shared kit of Kiln's tests: an in-process NATS
// server, git repositories (optionally served over smart HTTP), golden
// files, polling with a deadline, tool checks and loggers.
//
// It imports no Kiln package, so that any package's internal tests can use
// it without an import cycle. Starting a real master or worker needs those
// packages; that part lives in kilntest/farmtest.
package kilntest
