package actors

import (
	"github.com/asynkron/protoactor-go/actor"
)

// Props builds the Props every hashfleet actor is spawned with: the producer, the metrics middleware of its
// kind and, when given, the strategy it supervises its own children with.
func Props(kind string, m *Metrics, producer actor.Producer, opts ...actor.PropsOption) *actor.Props {
	all := make([]actor.PropsOption, 0, len(opts)+2)
	if m != nil {
		km := m.kind(kind)
		all = append(all,
			actor.WithReceiverMiddleware(m.receiverMiddleware(kind)),
			actor.WithMailbox(actor.Unbounded(mailboxStats{g: km.mailbox})))
	}
	all = append(all, opts...)
	return actor.PropsFromProducer(producer, all...)
}
