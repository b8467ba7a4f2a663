package api

// operations maps each POST /<Operation> to its handler.
func (s *Server) operations() map[string]operation {
	return map[string]operation{
		"CreateEncoderConfiguration": handle(s.createEncoderConfiguration),
		"GetEncoderConfiguration":    handle(s.getEncoderConfiguration),
		"ListEncoderConfigurations":  handle(s.listEncoderConfigurations),
		"DeleteEncoderConfiguration": handle(s.deleteEncoderConfiguration),

		"CreateStorageConfiguration": handle(s.createStorageConfiguration),
		"GetStorageConfiguration":    handle(s.getStorageConfiguration),
		"ListStorageConfigurations":  handle(s.listStorageConfigurations),
		"DeleteStorageConfiguration": handle(s.deleteStorageConfiguration),

		"CreateIngestConfiguration": handle(s.createIngestConfiguration),
		"GetIngestConfiguration":    handle(s.getIngestConfiguration),
		"ListIngestConfigurations":  handle(s.listIngestConfigurations),
		"UpdateIngestConfiguration": handle(s.updateIngestConfiguration),
		"DeleteIngestConfiguration": handle(s.deleteIngestConfiguration),

		"ImportPublicKey": handle(s.importPublicKey),
		"GetPublicKey":    handle(s.getPublicKey),
		"ListPublicKeys":  handle(s.listPublicKeys),
		"DeletePublicKey": handle(s.deletePublicKey),

		"CreateStage":            handle(s.createStage),
		"GetStage":               handle(s.getStage),
		"ListStages":             handle(s.listStages),
		"UpdateStage":            handle(s.updateStage),
		"DeleteStage":            handle(s.deleteStage),
		"CreateParticipantToken": handle(s.createParticipantToken),
		"DisconnectParticipant":  handle(s.disconnectParticipant),

		"GetParticipant":        handle(s.getParticipant),
		"ListParticipants":      handle(s.listParticipants),
		"ListParticipantEvents": handle(s.listParticipantEvents),
		"GetStageSession":       handle(s.getStageSession),
		"ListStageSessions":     handle(s.listStageSessions),

		"StartComposition": handle(s.startComposition),
		"GetComposition":   handle(s.getComposition),
		"ListCompositions": handle(s.listCompositions),
		"StopComposition":  handle(s.stopCompositionOp),
	}
}
