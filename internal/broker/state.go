package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/memphisdev/memphis.go/internal/wire"
)

// The registry is what the real broker keeps in PostgreSQL: stations,
// schemas, producer and consumer registrations and dead-letter records. It
// is written to the store directory after every change, so a restarted
// broker finds it again beside its JetStream data.

const registryFile = "memphis-registry.json"

type station struct {
	Name           string `json:"name"` // external, lower-cased
	Intern         string `json:"intern"`
	Partitions     []int  `json:"partitions"`
	RetentionType  string `json:"retention_type"`
	RetentionValue int    `json:"retention_value"`
	StorageType    string `json:"storage_type"`
	Replicas       int    `json:"replicas"`
	IdempotencyMs  int64  `json:"idempotency_ms"`
	DLSPoison      bool   `json:"dls_poison"`
	DLSSchemaverse bool   `json:"dls_schemaverse"`
	DLSStation     string `json:"dls_station"`
	Schema         string `json:"schema"`
	SchemaVersion  int    `json:"schema_version"`
	TieredStorage  bool   `json:"tiered_storage"`
}

// idempotencyWindow is how long a msg-id keeps a copy out of the station.
func (st *station) idempotencyWindow() time.Duration {
	return time.Duration(st.IdempotencyMs) * time.Millisecond
}

// streams names the station's JetStream streams, one per partition.
func (st *station) streams() []string {
	out := make([]string, len(st.Partitions))
	for i, p := range st.Partitions {
		out[i] = wire.StreamName(st.Intern, p)
	}
	return out
}

type schemaVersion struct {
	Number     int    `json:"number"`
	Content    string `json:"content"`
	Descriptor string `json:"descriptor"`
	StructName string `json:"struct_name"`
	Active     bool   `json:"active"`
}

type schemaRec struct {
	Name     string          `json:"name"`
	Type     string          `json:"type"`
	Versions []schemaVersion `json:"versions"`
}

func (s *schemaRec) active() *schemaVersion {
	for i := range s.Versions {
		if s.Versions[i].Active {
			return &s.Versions[i]
		}
	}
	return nil
}

type producerRec struct {
	Name    string `json:"name"`
	Station string `json:"station"`
	ConnID  string `json:"conn_id"`
}

type consumerRec struct {
	Name          string `json:"name"`
	Station       string `json:"station"`
	Group         string `json:"group"` // lower-cased external group name
	ConnID        string `json:"conn_id"`
	MaxAckTimeMs  int    `json:"max_ack_time_ms"` // as requested, before defaults
	MaxDeliveries int    `json:"max_deliveries"`  // as requested, before the clamp
	StartSeq      uint64 `json:"start_seq"`
	LastMessages  int64  `json:"last_messages"`
	Partitions    []int  `json:"partitions"`
	Type          string `json:"type"`
}

// DeadLetter is one dead-letter record of a station.
type DeadLetter struct {
	ID        int                 `json:"id"`
	Station   string              `json:"station"` // internal name
	Partition int                 `json:"partition"`
	Seq       uint64              `json:"seq"`
	Type      string              `json:"type"` // poison or schema
	Groups    []string            `json:"groups"`
	Reason    string              `json:"reason"`
	Producer  string              `json:"producer"`
	Headers   map[string][]string `json:"headers"`
	Data      []byte              `json:"data"`
}

type registry struct {
	Stations    map[string]*station   `json:"stations"` // by external name
	Schemas     map[string]*schemaRec `json:"schemas"`  // by name as sent
	Producers   []producerRec         `json:"producers"`
	Consumers   []consumerRec         `json:"consumers"`
	DeadLetters []DeadLetter          `json:"dead_letters"`
	NextDLSID   int                   `json:"next_dls_id"`
}

func newRegistry() *registry {
	return &registry{Stations: map[string]*station{}, Schemas: map[string]*schemaRec{}, NextDLSID: 1}
}

func loadRegistry(dir string) (*registry, error) {
	data, err := os.ReadFile(filepath.Join(dir, registryFile))
	if errors.Is(err, fs.ErrNotExist) {
		return newRegistry(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("broker: reading registry: %w", err)
	}
	r := newRegistry()
	if err := json.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("broker: registry %s: %w", registryFile, err)
	}
	if r.Stations == nil {
		r.Stations = map[string]*station{}
	}
	if r.Schemas == nil {
		r.Schemas = map[string]*schemaRec{}
	}
	return r, nil
}

// save writes the registry atomically (write, then rename).
func (r *registry) save(dir string) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, registryFile+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, registryFile))
}

// stationByIntern finds a station by its internal (stream-side) name.
func (r *registry) stationByIntern(intern string) *station {
	for _, st := range r.Stations {
		if st.Intern == intern {
			return st
		}
	}
	return nil
}

// groupKnown reports whether any consumer of any station has that group
// (the real broker's check before it stores a dead letter, §8.1 step 4).
func (r *registry) groupKnown(group string) bool {
	for _, c := range r.Consumers {
		if c.Group == group {
			return true
		}
	}
	return false
}

// findDeadLetter is the index of the record of one stored message, or -1.
func (r *registry) findDeadLetter(intern string, partition int, seq uint64) int {
	for i, d := range r.DeadLetters {
		if d.Station == intern && d.Partition == partition && d.Seq == seq && d.Type == dlsPoison {
			return i
		}
	}
	return -1
}

// dropStation forgets everything registered under a station.
func (r *registry) dropStation(name string) {
	st := r.Stations[name]
	delete(r.Stations, name)
	r.Producers = filterSlice(r.Producers, func(p producerRec) bool { return p.Station != name })
	r.Consumers = filterSlice(r.Consumers, func(c consumerRec) bool { return c.Station != name })
	if st != nil {
		r.DeadLetters = filterSlice(r.DeadLetters, func(d DeadLetter) bool { return d.Station != st.Intern })
	}
	for _, other := range r.Stations {
		if other.DLSStation == name {
			other.DLSStation = ""
		}
	}
}

func filterSlice[T any](s []T, keep func(T) bool) []T {
	out := s[:0]
	for _, v := range s {
		if keep(v) {
			out = append(out, v)
		}
	}
	clear(s[len(out):])
	return out
}
