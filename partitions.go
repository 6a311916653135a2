package memphis

import (
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/spaolacci/murmur3"
)

// partitionKeySeed is the murmur3 seed every Memphis SDK uses, so that a key
// lands on the same partition whichever SDK produced it.
const partitionKeySeed = 31

// PartitionForKey returns the partition a key routes to among partitions:
// partitions[murmur3_32(key, seed 31) mod len(partitions)], as the Go and
// Python SDKs compute it. It returns 0 for an empty list.
func PartitionForKey(key string, partitions []int) int {
	if len(partitions) == 0 {
		return 0
	}
	h := murmur3.Sum32WithSeed([]byte(key), partitionKeySeed)
	return partitions[h%uint32(len(partitions))]
}

// choosePartition picks the partition for one produce or fetch: by key
// (byKey, since the empty string is a key too), by number, or round-robin.
// Zero means the station has no partitions (a legacy station).
func choosePartition(partitions []int, key string, byKey bool, number int, rr *atomic.Uint64) (int, error) {
	byKey = byKey || key != ""
	if byKey && number > 0 {
		return 0, fmt.Errorf("%w: give a partition key or a partition number, not both", ErrInvalidOption)
	}
	if number < 0 {
		return 0, fmt.Errorf("%w: partition number %d is negative", ErrPartitionNotFound, number)
	}
	switch {
	case len(partitions) == 0:
		if number > 0 {
			return 0, fmt.Errorf("%w: the station has no partitions", ErrPartitionNotFound)
		}
		return 0, nil
	case number > 0:
		if !slices.Contains(partitions, number) {
			return 0, fmt.Errorf("%w: partition %d is not one of %v", ErrPartitionNotFound, number, partitions)
		}
		return number, nil
	case byKey:
		return PartitionForKey(key, partitions), nil
	case len(partitions) == 1:
		return partitions[0], nil
	}
	i := rr.Add(1) - 1
	return partitions[i%uint64(len(partitions))], nil
}
