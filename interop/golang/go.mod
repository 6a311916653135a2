module memphisinterop

go 1.24.0

require (
	github.com/memphisdev/memphis.go v1.3.2
	github.com/nats-io/nats.go v1.31.0
	google.golang.org/protobuf v1.28.1
)

require (
	github.com/gofrs/uuid v4.4.0+incompatible // indirect
	github.com/graph-gophers/graphql-go v1.5.0 // indirect
	github.com/hamba/avro/v2 v2.13.0 // indirect
	github.com/json-iterator/go v1.1.12 // indirect
	github.com/klauspost/compress v1.17.0 // indirect
	github.com/mitchellh/mapstructure v1.5.0 // indirect
	github.com/modern-go/concurrent v0.0.0-20180306012644-bacd9c7ef1dd // indirect
	github.com/modern-go/reflect2 v1.0.2 // indirect
	github.com/nats-io/nkeys v0.4.5 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	github.com/santhosh-tekuri/jsonschema/v5 v5.1.0 // indirect
	github.com/spaolacci/murmur3 v1.1.0 // indirect
	golang.org/x/crypto v0.6.0 // indirect
	golang.org/x/sys v0.5.0 // indirect
	golang.org/x/text v0.13.0 // indirect
)
