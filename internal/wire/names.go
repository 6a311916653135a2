package wire

import "fmt"

// MaxNameLen is the longest station, producer, consumer or group name the
// broker accepts.
const MaxNameLen = 128

// Object kinds named in the broker's validation errors.
const (
	ObjStation  = "Station"
	ObjProducer = "Producer"
	ObjConsumer = "Consumer"
	ObjSchema   = "Schema"
)

// NameError is a name the broker's rules refuse. Its text is the broker's own.
type NameError struct{ Text string }

func (e *NameError) Error() string { return e.Text }

// ValidateName applies the broker's name rules to a name that has already
// been lower-cased, returning the broker's exact error text. obj is one of the
// Obj* constants. Consumer groups are checked as ObjConsumer, as the broker does.
func ValidateName(obj, name string) error {
	if name == "" {
		return &NameError{obj + " name can not be empty"}
	}
	if len(name) > MaxNameLen {
		return &NameError{fmt.Sprintf("%s should be under %d characters", obj, MaxNameLen)}
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return &NameError{"Only alphanumeric and the '_', '-', '.' characters are allowed in " + obj}
		}
	}
	if !isAlnum(name[0]) || !isAlnum(name[len(name)-1]) {
		return &NameError{obj + " name can not start or end with non alphanumeric character"}
	}
	return nil
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
