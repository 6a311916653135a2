package memphis

import (
	"fmt"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/memphisdev/memphis.go/internal/wire"
)

// partitionKeySeed is the murmur3 seed every Memphis SDK uses, so that a key
// lands on the same partition whichever SDK produced it.
const partitionKeySeed = 31

// SEED is the murmur3 seed PartitionForKey hashes keys with, the same in
// every Memphis SDK.
//
// Deprecated: it is 1.x's name for a detail of PartitionForKey, which needs
// no seed from its caller.
const SEED = partitionKeySeed

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

// GetPartitionFromKey returns the partition a key routes to on a station, as
// ProducerPartitionKey and ConsumerPartitionKey route it (0 for a station
// without partitions). The connection knows a station's partitions once one
// of its producers or consumers is registered on it; before that, or after
// the last one is destroyed, it fails with ErrStationNotFound.
func (c *Conn) GetPartitionFromKey(key string, stationName string) (int, error) {
	partitions, err := c.knownPartitions(stationName)
	if err != nil {
		return 0, opErr("partition from key", stationName, err)
	}
	return PartitionForKey(key, partitions), nil
}

// ValidatePartitionNumber returns nil if partitionNumber is one of the
// station's partitions and ErrPartitionNotFound otherwise. Like
// GetPartitionFromKey, it needs a producer or consumer of this connection
// on the station.
func (c *Conn) ValidatePartitionNumber(partitionNumber int, stationName string) error {
	partitions, err := c.knownPartitions(stationName)
	if err == nil && !slices.Contains(partitions, partitionNumber) {
		err = fmt.Errorf("%w: partition %d is not one of %v", ErrPartitionNotFound, partitionNumber, partitions)
	}
	return opErr("validate partition", stationName, err)
}

// knownPartitions returns the partitions of a station this connection has a
// producer or consumer on.
func (c *Conn) knownPartitions(stationName string) ([]int, error) {
	c.mu.Lock()
	st := c.stations[wire.InternalName(stationName)]
	c.mu.Unlock()
	if st == nil {
		return nil, fmt.Errorf("%w: this connection has no producer or consumer on %q, so it does not know its partitions", ErrStationNotFound, stationName)
	}
	return st.partitionList(), nil
}

// RoundRobinProducerConsumerGenerator hands out a station's partitions in
// turn. It is safe for concurrent use.
//
// Deprecated: 1.x used it to choose partitions and exposed it on producers
// and consumers; this SDK chooses partitions itself and fills the
// PartitionGenerator fields only so that 1.x code reading them compiles.
type RoundRobinProducerConsumerGenerator struct {
	// NumberOfPartitions is len(Partitions).
	NumberOfPartitions int
	// Partitions are the station's partitions.
	Partitions []int
	// Current is the index of the partition Next returns next.
	Current int

	mu sync.Mutex
}

// newRoundRobinGenerator returns a generator over partitions, or nil when
// there are none.
func newRoundRobinGenerator(partitions []int) *RoundRobinProducerConsumerGenerator {
	if len(partitions) == 0 {
		return nil
	}
	p := slices.Clone(partitions)
	return &RoundRobinProducerConsumerGenerator{NumberOfPartitions: len(p), Partitions: p}
}

// Next returns the next partition in turn.
func (rr *RoundRobinProducerConsumerGenerator) Next() int {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	if len(rr.Partitions) == 0 {
		return 0
	}
	if rr.Current < 0 || rr.Current >= len(rr.Partitions) {
		rr.Current = 0
	}
	p := rr.Partitions[rr.Current]
	rr.Current = (rr.Current + 1) % len(rr.Partitions)
	return p
}
