//go:build !unix

package otelmemphis_test

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
