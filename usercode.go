package memphis

import (
	"reflect"
	"runtime"
	"sync/atomic"
)

// This file is how a blocking call tells whether it was made from user
// code that the SDK itself is running: a Consume handler or consumer error
// handler on a consume loop's dispatcher, an async produce's callback or
// error handler on the connection's callback goroutine, a connection
// handler on nats.go's callback goroutine.
//
// Each of those goroutines runs the user's code and nothing else until it
// returns. A call from inside it that waited for the goroutine — StopConsume
// for the handler call to return, Flush for the callbacks queued behind the
// running one, Close for the callback goroutine to drain or for the
// connection's handlers to run — would wait for itself. The same call made
// anywhere else must wait: that is what makes "no handler runs after
// StopConsume returns" and "no callback is lost at Close" true.
//
// The question is not which goroutine the call runs on but whether it is
// nested in a call of user code, and that is a property of the call stack,
// which Go does expose: the SDK calls user code only through runUserCode,
// and a call that is about to wait looks for that function's frame among
// its callers (as the testing package finds the frames marked by
// T.Helper). Each owner of such a goroutine also counts the calls of user
// code it is in (inUser), so the stack is read only while one is running,
// and a call from user code run by another owner still waits for this one
// unless this one is also in user code at that moment.

// inUser counts how many calls of user code an owner (a consume loop, the
// callback goroutine, the connection's handlers) is in right now.
type inUser struct{ n atomic.Int32 }

// runUserCode calls fn, which runs user code, with in counting it. Its
// frame is the mark that nestedIn looks for: keep it out of line.
//
//go:noinline
func runUserCode(in *inUser, fn func()) {
	in.n.Add(1)
	fn()
	in.n.Add(-1)
}

// nestedIn reports whether the call that calls it was made from inside user
// code that in's owner runs.
func (in *inUser) nestedIn() bool {
	if in.n.Load() == 0 {
		return false
	}
	mark := reflect.ValueOf(runUserCode).Pointer()
	pcs := make([]uintptr, 64)
	for {
		n := runtime.Callers(2, pcs)
		if n == len(pcs) {
			pcs = make([]uintptr, 2*len(pcs))
			continue
		}
		frames := runtime.CallersFrames(pcs[:n])
		for {
			f, more := frames.Next()
			if f.Entry == mark {
				return true
			}
			if !more {
				return false
			}
		}
	}
}
