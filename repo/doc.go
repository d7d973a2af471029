// Package repo publishes signed apt and yum repositories per channel.
//
// A Publisher owns one root directory. Every file it serves is a hard link
// to an immutable object in ROOT/.store (named by its sha256), so a publish
// only writes index files that are new. Each publish builds a complete
// version directory beside the served one, signs it, syncs it to disk and
// then swaps ROOT/<channel>/current to it with one rename; clients never see
// a half-written or unsigned tree. See docs/repositories.md.
package repo
