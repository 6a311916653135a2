package memphis

import (
	"errors"
	"sync/atomic"
	"testing"
)

// The vectors (docs/protocol.md#partition-key-vectors) are murmur3_32 with seed 31, as the
// Go and Python SDKs route keys, so a key lands where other SDKs put it.
func TestPartitionForKeyMatchesOtherSDKs(t *testing.T) {
	parts := []int{1, 2, 3}
	for _, tc := range []struct {
		key  string
		want int
	}{
		{"", 3}, {"a", 1}, {"abc", 1}, {"key-1", 2}, {"user-42", 1}, {"hello world", 2},
	} {
		if got := PartitionForKey(tc.key, parts); got != tc.want {
			t.Errorf("PartitionForKey(%q) = %d, want %d", tc.key, got, tc.want)
		}
	}
	for key, want := range map[string]uint32{
		"": 1257683291, "a": 3387765255, "abc": 339830091, "key-1": 3864697147,
		"user-42": 660284634, "hello world": 3257039608,
	} {
		if got := murmur3Sum32(key, partitionKeySeed); got != want {
			t.Errorf("murmur3(%q) = %d, want %d", key, got, want)
		}
	}
	if got := PartitionForKey("a", nil); got != 0 {
		t.Errorf("no partitions: got %d, want 0", got)
	}
}

func TestChoosePartition(t *testing.T) {
	parts := []int{1, 2, 3}
	var rr atomic.Uint64
	var got []int
	for range 6 {
		p, err := choosePartition(parts, "", false, 0, &rr)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p)
	}
	if want := []int{1, 2, 3, 1, 2, 3}; !equalInts(got, want) {
		t.Errorf("round-robin = %v, want %v", got, want)
	}
	if p, err := choosePartition(parts, "", false, 2, &rr); err != nil || p != 2 {
		t.Errorf("number 2: got %d, %v", p, err)
	}
	for _, n := range []int{-1, 4, 100} {
		if _, err := choosePartition(parts, "", false, n, &rr); !errors.Is(err, ErrPartitionNotFound) {
			t.Errorf("number %d: err = %v, want ErrPartitionNotFound", n, err)
		}
	}
	// Lists need not be 1..N: membership, not range, decides (the official
	// Go SDK checks the range first; docs/protocol.md#quirk-partition-number-range-check).
	if _, err := choosePartition([]int{2, 5}, "", false, 3, &rr); !errors.Is(err, ErrPartitionNotFound) {
		t.Errorf("3 of [2 5]: err = %v, want ErrPartitionNotFound", err)
	}
	if _, err := choosePartition(parts, "k", false, 1, &rr); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("key and number: err = %v, want ErrInvalidOption", err)
	}
	if p, err := choosePartition(nil, "k", false, 0, &rr); err != nil || p != 0 {
		t.Errorf("legacy station: got %d, %v", p, err)
	}
	if p, _ := choosePartition([]int{7}, "", false, 0, &rr); p != 7 {
		t.Errorf("single partition: got %d, want 7", p)
	}
	// The empty string is a key like any other (it hashes to partition 3),
	// not "no key".
	for range 3 {
		if p, err := choosePartition(parts, "", true, 0, &rr); err != nil || p != 3 {
			t.Errorf("empty key: got %d, %v, want 3", p, err)
		}
	}
	if _, err := choosePartition(parts, "", true, 2, &rr); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("empty key and number: err = %v, want ErrInvalidOption", err)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
