// Package farmtest starts the real Kiln master and worker in-process for
// integration tests, each owned by the test that started it: the test's
// cleanup stops it and waits for it.
//
// It is apart from kilntest because it imports the master and worker
// packages, which a package those import could not use in its own
// (internal) tests without an import cycle.
package farmtest
