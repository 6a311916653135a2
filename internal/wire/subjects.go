// Package wire holds the Memphis SDK⇄broker protocol: subject names, header
// names, the JSON request and reply bodies, and the naming rules. The SDK and
// the in-process broker both use it, so the two cannot drift apart.
//
// Field names and strings here are part of the protocol of Memphis broker
// 1.4.4 (docs/protocol.md describes them); change none of them without
// checking the real broker.
package wire

import (
	"strconv"
	"strings"
)

// Control-plane request subjects (request/reply, JSON body, no NATS headers).
const (
	SubjStationCreations     = "$memphis_station_creations"
	SubjStationDestructions  = "$memphis_station_destructions"
	SubjProducerCreations    = "$memphis_producer_creations"
	SubjProducerDestructions = "$memphis_producer_destructions"
	SubjConsumerCreations    = "$memphis_consumer_creations"
	SubjConsumerDestructions = "$memphis_consumer_destructions"
	SubjSchemaCreations      = "$memphis_schema_creations"
	SubjSchemaAttachments    = "$memphis_schema_attachments"
	SubjSchemaDetachments    = "$memphis_schema_detachments"
)

// Fire-and-forget subjects published by SDKs.
const (
	SubjNackedDLS      = "$memphis_nacked_dls"
	SubjSchemaverseDLS = "$memphis_schemaverse_dls"
	SubjPMAcks         = "$memphis_pm_acks"
	SubjNotifications  = "$memphis_notifications"
)

// Subjects the broker publishes on and SDKs subscribe to.
const (
	SubjClientUpdates         = "$memphis_sdk_clients_updates"
	subjSchemaUpdatesPrefix   = "$memphis_schema_updates_"
	subjFunctionUpdatesPrefix = "$memphis_functions_updates_"
	subjDLSResendPrefix       = "$memphis_dls_"
	SubjConfigUpdatesInit     = "$memphis_configurations_updates.init."
)

// Client-update types carried by SubjClientUpdates.
const (
	UpdateSendNotification = "send_notification"
	UpdateSchemaverseToDLS = "schemaverse_to_dls"
	UpdateRemoveStation    = "remove_station"
)

// Schema update kinds (the untagged UpdateType field,
// docs/protocol.md#quirk-schema-update-key).
const (
	SchemaUpdateKindInit = 1
	SchemaUpdateKindDrop = 2
)

// Header names on produced and re-sent messages.
const (
	HdrConnectionID = "$memphis_connectionId"
	HdrProducedBy   = "$memphis_producedBy"
	// HdrMsgID is the de-duplication header of the Memphis broker (its fork
	// of JetStream reads "msg-id"); HdrNatsMsgID is stock JetStream's. The
	// SDK sends both so that a message id de-duplicates on either broker.
	HdrMsgID     = "msg-id"
	HdrNatsMsgID = "Nats-Msg-Id"
	HdrPMID      = "$memphis_pm_id"
	HdrPMCGName  = "$memphis_pm_cg_name"
	// HdrReservedPrefix starts every header key that belongs to Memphis.
	HdrReservedPrefix = "$memphis"
	// DLSProducer is the producer name the broker writes into re-sent messages.
	DLSProducer = "$memphis_dls"
	// Headers the broker adds to copies it sends to a station's DLS station:
	// the source station's name, and the kind of dead letter, DLSTypeUnacked
	// (a poison message, and a client's dead letter alike) or
	// DLSTypeFailedSchema. The broker copies every header of a schema
	// failure's report, so the SDK adds the validator's reason there as
	// HdrDLSValidationError.
	HdrDLSStation         = "station"
	HdrDLSType            = "type"
	HdrDLSValidationError = "validation_error"
	DLSTypeUnacked        = "unacked"
	DLSTypeFailedSchema   = "failed_schema"
)

// Request versions sent by current SDKs.
const (
	CreateReqVersion  = 4
	DestroyReqVersion = 1
)

// InternalName is the name a station or consumer group has on the wire:
// lower-cased, with '.' replaced by '#'.
func InternalName(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), ".", "#")
}

// ExternalName turns an internal (stream-side) name back into the name users
// see. Like the broker, it does not lower-case.
func ExternalName(intern string) string {
	return strings.ReplaceAll(intern, "#", ".")
}

// StreamName is the JetStream stream that holds one partition of a station.
// Partition 0 stands for a legacy station without partitions.
func StreamName(intern string, partition int) string {
	if partition == 0 {
		return intern
	}
	return intern + "$" + strconv.Itoa(partition)
}

// ProduceSubject is the subject producers publish to for a stream.
func ProduceSubject(stream string) string { return stream + ".final" }

// StreamSubjects are the subjects a station stream captures.
func StreamSubjects(stream string) []string { return []string{stream + ".>"} }

// SchemaUpdatesSubject is where the broker announces schema changes of a station.
func SchemaUpdatesSubject(intern string) string { return subjSchemaUpdatesPrefix + intern }

// FunctionsUpdatesSubject is where a cloud broker announces function changes.
func FunctionsUpdatesSubject(intern string) string { return subjFunctionUpdatesPrefix + intern }

// DLSResendSubject is where the broker re-sends dead-lettered messages of a
// consumer group (the current convention; SDKs queue-subscribe to it).
func DLSResendSubject(intern, internCG string) string {
	return subjDLSResendPrefix + intern + "." + internCG
}

// LegacyDLSResendSubject is the older form the broker also publishes to.
func LegacyDLSResendSubject(intern, internCG string) string {
	return subjDLSResendPrefix + intern + "_" + internCG
}

// SplitStreamName splits "<intern>$<p>" into its station and partition.
// A stream without '$' is a legacy station and gets partition -1.
func SplitStreamName(stream string) (intern string, partition int) {
	i := strings.LastIndexByte(stream, '$')
	if i < 0 {
		return stream, -1
	}
	p, err := strconv.Atoi(stream[i+1:])
	if err != nil {
		return stream, -1
	}
	return stream[:i], p
}
