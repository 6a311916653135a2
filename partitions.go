package memphis

import (
	"fmt"
	"math/bits"
	"slices"
	"sync/atomic"
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
	h := murmur3Sum32(key, partitionKeySeed)
	return partitions[h%uint32(len(partitions))]
}

// murmur3Sum32 is MurmurHash3 x86_32. It is written here rather than taken
// from github.com/spaolacci/murmur3, whose Sum32 trips Go's pointer checks
// (and so crashes programs tested with -race) on some inputs; a
// differential fuzz test keeps the two equal.
func murmur3Sum32(data string, seed uint32) uint32 {
	const c1, c2 = 0xcc9e2d51, 0x1b873593
	h := seed
	n := len(data)
	for i := 0; i+4 <= n; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= c1
		k = bits.RotateLeft32(k, 15)
		k *= c2
		h ^= k
		h = bits.RotateLeft32(h, 13)
		h = h*5 + 0xe6546b64
	}
	var k uint32
	tail := data[n&^3:]
	switch len(tail) {
	case 3:
		k ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		k ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		k ^= uint32(tail[0])
		k *= c1
		k = bits.RotateLeft32(k, 15)
		k *= c2
		h ^= k
	}
	h ^= uint32(n)
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}

// producePartition picks the partition of one produce to t. A message with
// a MsgId and neither a key nor a number is routed by its id, as if the id
// were its key: each partition is a stream of its own that de-duplicates
// only what it stores, so a retry must land where the first try did, which
// round robin would not do.
func producePartition(t *target, o *ProduceOpts) (int, error) {
	key, byKey := o.PartitionKey, o.byKey
	if !byKey && o.PartitionNumber == 0 && o.MsgId != "" {
		key, byKey = o.MsgId, true
	}
	return choosePartition(t.st.partitionList(), key, byKey, o.PartitionNumber, &t.rr)
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
