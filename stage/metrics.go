package stage

import "github.com/prometheus/client_golang/prometheus"

var (
	roomsDesc = prometheus.NewDesc("stagehand_stage_rooms",
		"Stages this server hosts with a session running.", nil, nil)
	cascadeDesc = prometheus.NewDesc("stagehand_stage_cascade",
		"The cascade on this node, by kind: edge_stages (stages hosted elsewhere whose subscribers it serves), "+
			"relays (publishers it relays from their stage's host) and remote_subscribers (subscribers of stages it "+
			"hosts that edges serve).", []string{"kind"}, nil)
	participantsDesc = prometheus.NewDesc("stagehand_stage_participants",
		"Participants connected to this server's stages, by state: joined (all of them, compositions' subscribers "+
			"included) and publishing.", []string{"state"}, nil)
	peersDesc = prometheus.NewDesc("stagehand_stage_peers",
		"Peer connections on this server's stages, by kind: publish (WHIP and RTMP ingest) and subscribe.",
		[]string{"kind"}, nil)
	pcsMadeDesc = prometheus.NewDesc("stagehand_stage_peer_connections_total",
		"WebRTC peer connections made since the server started, refused offers' included.", nil, nil)
	pcsOpenDesc = prometheus.NewDesc("stagehand_stage_peer_connections_open",
		"WebRTC peer connections open now, negotiating or joined.", nil, nil)
	droppedDesc = prometheus.NewDesc("stagehand_stage_fanout_dropped_packets_total",
		"Packets not written to subscribers because their writer shard fell behind (the node is short of CPU).",
		nil, nil)
)

// Collector reports the stages' occupancy, read when scraped.
func (s *Server) Collector() prometheus.Collector { return stageCollector{s} }

type stageCollector struct{ s *Server }

func (c stageCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- roomsDesc
	ch <- cascadeDesc
	ch <- participantsDesc
	ch <- peersDesc
	ch <- pcsMadeDesc
	ch <- pcsOpenDesc
	ch <- droppedDesc
}

func (c stageCollector) Collect(ch chan<- prometheus.Metric) {
	c.s.mu.Lock()
	rooms := make([]*room, 0, len(c.s.rooms))
	for _, r := range c.s.rooms {
		rooms = append(rooms, r)
	}
	c.s.mu.Unlock()
	var live, joined, publishing int
	peers := map[peerKind]int{publishPeer: 0, subscribePeer: 0}
	cascade := map[string]int{"edge_stages": 0, "relays": 0, "remote_subscribers": 0}
	for _, r := range rooms {
		r.mu.Lock()
		switch {
		case r.origin != nil:
			cascade["edge_stages"]++
		case r.sessionID != "":
			live++
		}
		// A room keeps those who left (DISCONNECTED) for its session.
		for _, p := range r.participants {
			if len(p.peers) == 0 {
				continue
			}
			if p.pub != nil && p.pub.relay != nil {
				cascade["relays"]++ // a publisher of another node's stage, relayed here
				continue
			}
			joined++
			if p.pub != nil {
				publishing++
			}
			for pe := range p.peers {
				switch {
				case pe.edge != nil && pe.edge.session != "":
					cascade["remote_subscribers"]++
				default:
					peers[pe.kind]++
				}
			}
		}
		r.mu.Unlock()
	}
	ch <- prometheus.MustNewConstMetric(roomsDesc, prometheus.GaugeValue, float64(live))
	for k, n := range cascade {
		ch <- prometheus.MustNewConstMetric(cascadeDesc, prometheus.GaugeValue, float64(n), k)
	}
	ch <- prometheus.MustNewConstMetric(participantsDesc, prometheus.GaugeValue, float64(joined), "joined")
	ch <- prometheus.MustNewConstMetric(participantsDesc, prometheus.GaugeValue, float64(publishing), "publishing")
	for k, n := range peers {
		ch <- prometheus.MustNewConstMetric(peersDesc, prometheus.GaugeValue, float64(n), k.String())
	}
	made, open := c.s.PeerConnections()
	ch <- prometheus.MustNewConstMetric(pcsMadeDesc, prometheus.CounterValue, float64(made))
	ch <- prometheus.MustNewConstMetric(pcsOpenDesc, prometheus.GaugeValue, float64(open))
	ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(c.s.FanoutDropped()))
}
