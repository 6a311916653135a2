//go:build !race

package memphis

import (
	"testing"

	"github.com/spaolacci/murmur3"
)

// FuzzMurmur3MatchesReference checks the SDK's MurmurHash3 against the
// implementation other Go code (and the official Go SDK) uses. Without
// -race only: the reference trips the race detector's pointer checks.
func FuzzMurmur3MatchesReference(f *testing.F) {
	for _, s := range []string{"", "a", "ab", "abc", "abcd", "abcde", "key-1", "user-42", "hello world"} {
		f.Add(s, uint32(31))
	}
	f.Fuzz(func(t *testing.T, key string, seed uint32) {
		if got, want := murmur3Sum32(key, seed), murmur3.Sum32WithSeed([]byte(key), seed); got != want {
			t.Fatalf("murmur3(%q, %d) = %d, reference %d", key, seed, got, want)
		}
	})
}
