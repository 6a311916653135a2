package memphis

import (
	"crypto/rand"
	"fmt"
	"strings"

	"github.com/memphisdev/memphis.go/internal/wire"
)

// checkName lower-cases a name and applies the broker's rules to it, so bad
// names fail before anything is sent.
func checkName(obj, name string) (string, error) {
	// Schema names too: the broker lower-cases them wherever it looks one
	// up (attach, station creation; docs/protocol.md#quirk-schema-name-case). Creating a
	// schema is stricter, see checkSchemaCreateName.
	lower := strings.ToLower(name)
	if err := wire.ValidateName(obj, lower); err != nil {
		return "", fmt.Errorf("%w: %s", ErrInvalidName, err.Error())
	}
	return lower, nil
}

// lowerASCII lower-cases ASCII letters only, as the broker does with the
// names it keys on, and allocates only when there is a letter to change.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// newUUID returns a random (version 4) UUID, the form the broker expects
// of a connection id.
func newUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

// randomSuffix is what the GenUniqueSuffix options append to a name: eight
// random hex digits.
func randomSuffix() (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return fmt.Sprintf("%x", b), nil
}
