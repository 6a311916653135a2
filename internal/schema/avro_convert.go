package schema

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/hamba/avro/v2"
)

// Avro messages travel as plain JSON documents, which lose the distinctions
// Avro makes (int/long/float/double, bytes, union branches). The two
// functions below map between such a document and the Go values the avro
// library encodes, reading the document against the schema:
//
//	null               JSON null
//	boolean            true or false
//	int, long          a whole JSON number (30, 30.0, 3e1) within range;
//	                   logical date, time-*, timestamp-* are that number
//	float, double      any JSON number in range
//	string, uuid       a JSON string
//	bytes, fixed       a string of code points 0-255, one per byte (Avro's
//	                   own JSON encoding); fixed must have exactly its size
//	decimal            a JSON number or numeric string with no more
//	                   fractional digits than the scale
//	enum               one of its symbols
//	array, map         a JSON array, a JSON object
//	record             a JSON object; a missing field takes its default or
//	                   is an error; keys the record lacks are ignored, as
//	                   the avro library and the other SDKs do
//	union              null for a null branch, else the first branch the
//	                   value fits; Avro's {"<branch>": value} form is also
//	                   read when the bare value fits no branch

// maxDecimalExponent bounds the exponent of decimal text: math/big would
// otherwise expand "1e999999999" digit by digit.
const maxDecimalExponent = 1000

// jsonToAvro converts a document decoded with json.Decoder.UseNumber to the
// values avro.Marshal takes for schema s, or says where it does not fit.
func jsonToAvro(s avro.Schema, v any) (any, error) {
	switch s.Type() {
	case avro.Ref:
		return jsonToAvro(s.(*avro.RefSchema).Schema(), v)
	case avro.Null:
		if v != nil {
			return nil, mismatch(s, v)
		}
		return nil, nil
	case avro.Boolean:
		if b, ok := v.(bool); ok {
			return b, nil
		}
		return nil, mismatch(s, v)
	case avro.Int:
		n, err := jsonWhole(s, v, math.MinInt32, math.MaxInt32)
		return int(n), err
	case avro.Long:
		return jsonWhole(s, v, math.MinInt64, math.MaxInt64)
	case avro.Float:
		f, err := jsonFloat(s, v)
		if err == nil && math.Abs(f) > math.MaxFloat32 {
			err = fmt.Errorf("%v is out of range for avro float", f)
		}
		return float32(f), err
	case avro.Double:
		return jsonFloat(s, v)
	case avro.String:
		if str, ok := v.(string); ok {
			return str, nil
		}
		return nil, mismatch(s, v)
	case avro.Bytes:
		if d, ok := decimalOf(s); ok {
			return jsonDecimal(s, d, v)
		}
		return latin1Bytes(s, v)
	case avro.Fixed:
		fs := s.(*avro.FixedSchema)
		if d, ok := decimalOf(s); ok {
			return jsonDecimal(s, d, v)
		}
		b, err := latin1Bytes(s, v)
		if err != nil {
			return nil, err
		}
		if len(b) != fs.Size() {
			return nil, fmt.Errorf("expected %d bytes for avro fixed %s, got %d", fs.Size(), fs.FullName(), len(b))
		}
		arr := reflect.New(reflect.ArrayOf(len(b), reflect.TypeFor[byte]())).Elem()
		reflect.Copy(arr, reflect.ValueOf(b))
		return arr.Interface(), nil
	case avro.Enum:
		es := s.(*avro.EnumSchema)
		str, ok := v.(string)
		if !ok {
			return nil, mismatch(s, v)
		}
		for _, sym := range es.Symbols() {
			if sym == str {
				return str, nil
			}
		}
		return nil, fmt.Errorf("%q is not a symbol of avro enum %s", str, es.FullName())
	case avro.Array:
		arr, ok := v.([]any)
		if !ok {
			return nil, mismatch(s, v)
		}
		items := s.(*avro.ArraySchema).Items()
		out := make([]any, len(arr))
		for i, e := range arr {
			c, err := jsonToAvro(items, e)
			if err != nil {
				return nil, atPath("["+strconv.Itoa(i)+"]", err)
			}
			out[i] = c
		}
		return out, nil
	case avro.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, mismatch(s, v)
		}
		values := s.(*avro.MapSchema).Values()
		out := make(map[string]any, len(obj))
		for k, e := range obj {
			c, err := jsonToAvro(values, e)
			if err != nil {
				return nil, atPath("["+strconv.Quote(k)+"]", err)
			}
			out[k] = c
		}
		return out, nil
	case avro.Record, avro.Error:
		rs := s.(*avro.RecordSchema)
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, mismatch(s, v)
		}
		out := make(map[string]any, len(rs.Fields()))
		for _, f := range rs.Fields() {
			fv, ok := obj[f.Name()]
			if !ok {
				if f.HasDefault() {
					// The avro library writes the default for a
					// missing key.
					continue
				}
				return nil, fmt.Errorf("avro record %s is missing required field %q", rs.FullName(), f.Name())
			}
			c, err := jsonToAvro(f.Type(), fv)
			if err != nil {
				return nil, atPath(f.Name(), err)
			}
			out[f.Name()] = c
		}
		return out, nil
	case avro.Union:
		return jsonToUnion(s.(*avro.UnionSchema), v)
	}
	return nil, fmt.Errorf("avro type %s is not supported", s.Type())
}

// jsonToUnion picks the union branch for v and returns the value in the
// avro library's generic union form, {"<branch name>": value}, which names
// the branch without the library having to guess it from a Go type.
func jsonToUnion(us *avro.UnionSchema, v any) (any, error) {
	types := us.Types()
	if v == nil {
		if _, pos := types.Get(string(avro.Null)); pos >= 0 {
			return nil, nil
		}
		return nil, fmt.Errorf("null is not a branch of avro union %s", unionText(us))
	}
	var firstErr error
	for _, t := range types {
		if t.Type() == avro.Null {
			continue
		}
		c, err := jsonToAvro(t, v)
		if err == nil {
			return map[string]any{unionName(t): c}, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if obj, ok := v.(map[string]any); ok && len(obj) == 1 {
		for k, inner := range obj {
			for _, t := range types {
				if !branchCalled(t, k) {
					continue
				}
				if t.Type() == avro.Null {
					if inner == nil {
						return nil, nil
					}
					continue
				}
				if c, err := jsonToAvro(t, inner); err == nil {
					return map[string]any{unionName(t): c}, nil
				}
			}
		}
	}
	if len(types) == 2 && firstErr != nil {
		// A nullable field has one real branch; its error says the most.
		return nil, firstErr
	}
	return nil, fmt.Errorf("%s matches no branch of avro union %s", jsonKind(v), unionText(us))
}

// avroToJSON turns what avro.Unmarshal decodes into an any back into the
// plain JSON document described above jsonToAvro.
func avroToJSON(s avro.Schema, v any) (any, error) {
	switch s.Type() {
	case avro.Ref:
		return avroToJSON(s.(*avro.RefSchema).Schema(), v)
	case avro.Null:
		return nil, nil
	case avro.Boolean, avro.String, avro.Enum:
		return v, nil
	case avro.Int:
		switch x := v.(type) {
		case int:
			return x, nil
		case int32:
			return int(x), nil
		case time.Time: // date
			days := x.Unix() / 86400
			if x.Unix()%86400 < 0 {
				days--
			}
			return days, nil
		case time.Duration: // time-millis
			return x.Milliseconds(), nil
		}
	case avro.Long:
		switch x := v.(type) {
		case int64:
			return x, nil
		case int:
			return int64(x), nil
		case time.Time:
			switch logicalOf(s) {
			case avro.TimestampMicros:
				return x.UnixMicro(), nil
			case avro.LocalTimestampMillis:
				return wallClockUTC(x).UnixMilli(), nil
			case avro.LocalTimestampMicros:
				return wallClockUTC(x).UnixMicro(), nil
			}
			return x.UnixMilli(), nil
		case time.Duration: // time-micros
			return x.Microseconds(), nil
		}
	case avro.Float:
		if x, ok := v.(float32); ok {
			f := float64(x)
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, fmt.Errorf("%v cannot be written in JSON", x)
			}
			return json.Number(strconv.FormatFloat(f, 'g', -1, 32)), nil
		}
	case avro.Double:
		if x, ok := v.(float64); ok {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, fmt.Errorf("%v cannot be written in JSON", x)
			}
			return x, nil
		}
	case avro.Bytes, avro.Fixed:
		switch x := v.(type) {
		case *big.Rat:
			d, _ := decimalOf(s)
			scale := 0
			if d != nil {
				scale = d.Scale()
			}
			return json.Number(x.FloatString(scale)), nil
		case avro.LogicalDuration:
			b := make([]byte, 12)
			putUint32LE(b[0:], x.Months)
			putUint32LE(b[4:], x.Days)
			putUint32LE(b[8:], x.Milliseconds)
			return latin1String(b), nil
		case []byte:
			return latin1String(x), nil
		}
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Array && rv.Type().Elem().Kind() == reflect.Uint8 {
			b := make([]byte, rv.Len())
			reflect.Copy(reflect.ValueOf(b), rv)
			return latin1String(b), nil
		}
	case avro.Array:
		if arr, ok := v.([]any); ok {
			items := s.(*avro.ArraySchema).Items()
			out := make([]any, len(arr))
			for i, e := range arr {
				c, err := avroToJSON(items, e)
				if err != nil {
					return nil, atPath("["+strconv.Itoa(i)+"]", err)
				}
				out[i] = c
			}
			return out, nil
		}
	case avro.Map:
		if obj, ok := v.(map[string]any); ok {
			values := s.(*avro.MapSchema).Values()
			out := make(map[string]any, len(obj))
			for k, e := range obj {
				c, err := avroToJSON(values, e)
				if err != nil {
					return nil, atPath("["+strconv.Quote(k)+"]", err)
				}
				out[k] = c
			}
			return out, nil
		}
	case avro.Record, avro.Error:
		if obj, ok := v.(map[string]any); ok {
			rs := s.(*avro.RecordSchema)
			out := make(map[string]any, len(rs.Fields()))
			for _, f := range rs.Fields() {
				c, err := avroToJSON(f.Type(), obj[f.Name()])
				if err != nil {
					return nil, atPath(f.Name(), err)
				}
				out[f.Name()] = c
			}
			return out, nil
		}
	case avro.Union:
		if v == nil {
			return nil, nil
		}
		if obj, ok := v.(map[string]any); ok && len(obj) == 1 {
			for k, inner := range obj {
				if t, _ := s.(*avro.UnionSchema).Types().Get(k); t != nil {
					return avroToJSON(t, inner)
				}
			}
		}
	}
	return nil, fmt.Errorf("unexpected %T for avro %s", v, s.Type())
}

// jsonWhole reads a JSON number that must be a whole number in [lo, hi].
func jsonWhole(s avro.Schema, v any, lo, hi int64) (int64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, mismatch(s, v)
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		// 30.0 and 3e1 are whole numbers too.
		f, ferr := strconv.ParseFloat(string(n), 64)
		if ferr != nil || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
			return 0, fmt.Errorf("expected %s, got number %s (not a whole number in range)", typeText(s), n)
		}
		i = int64(f)
	}
	if i < lo || i > hi {
		return 0, fmt.Errorf("%s is out of range for %s", n, typeText(s))
	}
	return i, nil
}

func jsonFloat(s avro.Schema, v any) (float64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, mismatch(s, v)
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		return 0, fmt.Errorf("%s is out of range for %s", n, typeText(s))
	}
	return f, nil
}

// jsonDecimal reads a decimal exactly; the avro library would silently
// drop the digits beyond the scale.
func jsonDecimal(s avro.Schema, d *avro.DecimalLogicalSchema, v any) (*big.Rat, error) {
	var text string
	switch x := v.(type) {
	case json.Number:
		text = string(x)
	case string:
		text = x
	default:
		return nil, mismatch(s, v)
	}
	if i := strings.IndexAny(text, "eE"); i >= 0 {
		exp, err := strconv.Atoi(text[i+1:])
		if err != nil || exp > maxDecimalExponent || exp < -maxDecimalExponent {
			return nil, fmt.Errorf("%q is not a decimal number in range", text)
		}
	}
	r, ok := new(big.Rat).SetString(text)
	if !ok || strings.Contains(text, "/") {
		return nil, fmt.Errorf("%q is not a decimal number", text)
	}
	scaled := new(big.Rat).Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(d.Scale())), nil)))
	if !scaled.IsInt() {
		return nil, fmt.Errorf("%s has more than %d decimal places", text, d.Scale())
	}
	if digits := len(new(big.Int).Abs(scaled.Num()).String()); digits > d.Precision() {
		return nil, fmt.Errorf("%s has more than %d significant digits", text, d.Precision())
	}
	return r, nil
}

// latin1Bytes reads Avro's JSON form of bytes: each character one byte.
func latin1Bytes(s avro.Schema, v any) ([]byte, error) {
	str, ok := v.(string)
	if !ok {
		return nil, mismatch(s, v)
	}
	b := make([]byte, 0, len(str))
	for _, r := range str {
		if r > 0xff {
			return nil, fmt.Errorf("character %q cannot stand for a byte in %s (bytes are written as code points 0-255)", r, typeText(s))
		}
		b = append(b, byte(r))
	}
	return b, nil
}

func latin1String(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

func putUint32LE(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

// wallClockUTC reads a local timestamp's wall clock as if it were UTC:
// local-timestamp values count from a wall-clock epoch, and the avro
// library decodes them into the local zone.
func wallClockUTC(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

func logicalOf(s avro.Schema) avro.LogicalType {
	if ls, ok := s.(avro.LogicalTypeSchema); ok {
		if l := ls.Logical(); l != nil {
			return l.Type()
		}
	}
	return ""
}

func decimalOf(s avro.Schema) (*avro.DecimalLogicalSchema, bool) {
	if ls, ok := s.(avro.LogicalTypeSchema); ok {
		if d, ok := ls.Logical().(*avro.DecimalLogicalSchema); ok {
			return d, true
		}
	}
	return nil, false
}

// unionName is the key the avro library uses for a union branch in its
// generic form: the full name of a named type, else the type name with any
// logical type appended ("long.timestamp-millis").
func unionName(t avro.Schema) string {
	if t.Type() == avro.Ref {
		t = t.(*avro.RefSchema).Schema()
	}
	if n, ok := t.(avro.NamedSchema); ok {
		return n.FullName()
	}
	if lt := logicalOf(t); lt != "" {
		return string(t.Type()) + "." + string(lt)
	}
	return string(t.Type())
}

// branchCalled reports whether k names branch t in the Avro JSON union form
// (the library's key, the bare type name, or a named type's short name).
func branchCalled(t avro.Schema, k string) bool {
	if k == unionName(t) {
		return true
	}
	if t.Type() == avro.Ref {
		t = t.(*avro.RefSchema).Schema()
	}
	if n, ok := t.(avro.NamedSchema); ok {
		return k == n.Name()
	}
	return k == string(t.Type())
}

func unionText(us *avro.UnionSchema) string {
	names := make([]string, len(us.Types()))
	for i, t := range us.Types() {
		names[i] = unionName(t)
	}
	return "[" + strings.Join(names, ", ") + "]"
}

// typeText names a schema type for error messages.
func typeText(s avro.Schema) string {
	if s.Type() == avro.Ref {
		s = s.(*avro.RefSchema).Schema()
	}
	if n, ok := s.(avro.NamedSchema); ok {
		return "avro " + string(s.Type()) + " " + n.FullName()
	}
	if lt := logicalOf(s); lt != "" {
		return "avro " + string(s.Type()) + " (" + string(lt) + ")"
	}
	return "avro " + string(s.Type())
}

func mismatch(s avro.Schema, v any) error {
	return fmt.Errorf("expected %s, got %s", typeText(s), jsonKind(v))
}

func jsonKind(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number:
		return "number " + string(x)
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// pathError locates an error inside a document ("items[2].price").
type pathError struct {
	path string
	err  error
}

func (e *pathError) Error() string { return e.path + ": " + e.err.Error() }
func (e *pathError) Unwrap() error { return e.err }

// atPath prefixes err's location with one more step, seg.
func atPath(seg string, err error) error {
	if pe, ok := err.(*pathError); ok {
		if strings.HasPrefix(pe.path, "[") {
			return &pathError{path: seg + pe.path, err: pe.err}
		}
		return &pathError{path: seg + "." + pe.path, err: pe.err}
	}
	return &pathError{path: seg, err: err}
}
