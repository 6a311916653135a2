package wire

// DLSConfig says which dead-letter events a station keeps.
type DLSConfig struct {
	Poison      bool `json:"poison"`
	Schemaverse bool `json:"schemaverse"`
}

// CreateStationReq is the body of SubjStationCreations.
type CreateStationReq struct {
	Name                 string    `json:"name"`
	SchemaName           string    `json:"schema_name"`
	RetentionType        string    `json:"retention_type"`
	RetentionValue       int       `json:"retention_value"`
	StorageType          string    `json:"storage_type"`
	Replicas             int       `json:"replicas"`
	IdempotencyWindowMs  int64     `json:"idempotency_window_in_ms"`
	DLSConfiguration     DLSConfig `json:"dls_configuration"`
	Username             string    `json:"username"`
	TieredStorageEnabled bool      `json:"tiered_storage_enabled"`
	PartitionsNumber     int       `json:"partitions_number"`
	DLSStation           string    `json:"dls_station"`
}

// DestroyStationReq is the body of SubjStationDestructions.
type DestroyStationReq struct {
	StationName string `json:"station_name"`
	Username    string `json:"username"`
}

// CreateProducerReq is the body of SubjProducerCreations (request version 4).
type CreateProducerReq struct {
	Name         string `json:"name"`
	StationName  string `json:"station_name"`
	ConnectionID string `json:"connection_id"`
	ProducerType string `json:"producer_type"`
	Username     string `json:"username"`
	ReqVersion   int    `json:"req_version"`
	AppID        string `json:"app_id"`
	SDKLang      string `json:"sdk_lang"`
}

// SchemaVersion is one version of a schema as the broker sends it.
type SchemaVersion struct {
	VersionNumber     int    `json:"version_number"`
	Descriptor        string `json:"descriptor"`
	SchemaContent     string `json:"schema_content"`
	MessageStructName string `json:"message_struct_name"`
}

// SchemaUpdateInit describes the schema a station enforces; an empty
// SchemaName means none.
type SchemaUpdateInit struct {
	SchemaName    string        `json:"schema_name"`
	ActiveVersion SchemaVersion `json:"active_version"`
	SchemaType    string        `json:"type"`
}

// SchemaUpdate is published on SchemaUpdatesSubject. UpdateType has no JSON
// tag on the broker, so its key is the Go field name
// (docs/protocol.md#quirk-schema-update-key).
type SchemaUpdate struct {
	UpdateType int              `json:"UpdateType"`
	Init       SchemaUpdateInit `json:"init"`
}

// PartitionsUpdate lists the partitions of a station.
type PartitionsUpdate struct {
	PartitionsList []int `json:"partitions_list"`
}

// CreateProducerResp is the reply to SubjProducerCreations.
type CreateProducerResp struct {
	SchemaUpdate                    SchemaUpdateInit `json:"schema_update"`
	PartitionsUpdate                PartitionsUpdate `json:"partitions_update"`
	SchemaverseToDLS                bool             `json:"schemaverse_to_dls"`
	SendNotification                bool             `json:"send_notification"`
	StationVersion                  int              `json:"station_version"`
	StationPartitionsFirstFunctions map[string]int   `json:"station_partitions_first_functions"`
	Err                             string           `json:"error"`
}

// DestroyProducerReq is the body of SubjProducerDestructions (version 1).
type DestroyProducerReq struct {
	Name         string `json:"name"`
	StationName  string `json:"station_name"`
	Username     string `json:"username"`
	ConnectionID string `json:"connection_id"`
	ReqVersion   int    `json:"req_version"`
}

// CreateConsumerReq is the body of SubjConsumerCreations (request version 4).
type CreateConsumerReq struct {
	Name                     string `json:"name"`
	StationName              string `json:"station_name"`
	ConnectionID             string `json:"connection_id"`
	ConsumerType             string `json:"consumer_type"`
	ConsumerGroup            string `json:"consumers_group"`
	MaxAckTimeMs             int    `json:"max_ack_time_ms"`
	MaxMsgDeliveries         int    `json:"max_msg_deliveries"`
	Username                 string `json:"username"`
	StartConsumeFromSequence uint64 `json:"start_consume_from_sequence"`
	LastMessages             int64  `json:"last_messages"`
	ReqVersion               int    `json:"req_version"`
	AppID                    string `json:"app_id"`
	SDKLang                  string `json:"sdk_lang"`
}

// CreateConsumerResp is the JSON reply to SubjConsumerCreations. Errors may
// instead come as plain text, and only the first reply counts
// (docs/protocol.md#quirk-consumer-error-two-replies).
type CreateConsumerResp struct {
	SchemaUpdate     SchemaUpdateInit `json:"schema_update"`
	PartitionsUpdate PartitionsUpdate `json:"partitions_update"`
	Err              string           `json:"error"`
}

// DestroyConsumerReq is the body of SubjConsumerDestructions (version 1).
type DestroyConsumerReq struct {
	Name         string `json:"name"`
	StationName  string `json:"station_name"`
	Username     string `json:"username"`
	ConnectionID string `json:"connection_id"`
	ReqVersion   int    `json:"req_version"`
}

// CreateSchemaReq is the body of SubjSchemaCreations.
type CreateSchemaReq struct {
	Name              string `json:"name"`
	Type              string `json:"type"`
	CreatedByUsername string `json:"created_by_username"`
	SchemaContent     string `json:"schema_content"`
	MessageStructName string `json:"message_struct_name"`
}

// ErrorResp is the reply of SubjSchemaCreations: an empty Err is success.
type ErrorResp struct {
	Err string `json:"error"`
}

// AttachSchemaReq is the body of SubjSchemaAttachments.
type AttachSchemaReq struct {
	Name        string `json:"name"`
	StationName string `json:"station_name"`
	Username    string `json:"username"`
}

// DetachSchemaReq is the body of SubjSchemaDetachments.
type DetachSchemaReq struct {
	StationName string `json:"station_name"`
	Username    string `json:"username"`
}

// NackedDLSMsg is published on SubjNackedDLS when a consumer dead-letters a
// message. StationName is the internal name; Partition must be at least 1.
type NackedDLSMsg struct {
	StationName string `json:"station_name"`
	Error       string `json:"error"`
	Partition   int    `json:"partition"`
	CGName      string `json:"cg_name"`
	Seq         uint64 `json:"seq"`
}

// ProducerDetails names the producer of a schema-failed message.
type ProducerDetails struct {
	Name         string `json:"name"`
	ConnectionID string `json:"connection_id"`
}

// MessagePayload is a message in a schema-failure report: Data is hex.
type MessagePayload struct {
	Data    string            `json:"data"`
	Headers map[string]string `json:"headers"`
}

// SchemaverseDLSMsg is published on SubjSchemaverseDLS when a producer's
// message fails schema validation and the station keeps such failures.
type SchemaverseDLSMsg struct {
	StationName     string          `json:"station_name"`
	Producer        ProducerDetails `json:"producer"`
	Message         MessagePayload  `json:"message"`
	ValidationError string          `json:"validation_error"`
	PartitionNumber int             `json:"partition_number,omitempty"`
}

// PMAck acknowledges a re-sent dead-letter message on SubjPMAcks.
type PMAck struct {
	ID     int    `json:"id"`
	CGName string `json:"cg_name"`
}

// ClientUpdate is published on SubjClientUpdates.
type ClientUpdate struct {
	StationName string `json:"station_name"`
	Type        string `json:"type"`
	Update      any    `json:"update"`
}

// Notification is published on SubjNotifications.
type Notification struct {
	Title string `json:"title"`
	Msg   string `json:"msg"`
	Type  string `json:"type"`
	Code  string `json:"code"`
}
