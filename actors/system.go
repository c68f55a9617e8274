package actors

import (
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"
)

// NewSystem returns an ActorSystem logging through log (nil: slog.Default()) with protoactor's own chatter
// held to warnings.
func NewSystem(log *slog.Logger) *actor.ActorSystem {
	if log == nil {
		log = slog.Default()
	}
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(levelFloor{h: log.Handler(), min: slog.LevelWarn}).With(slog.String("lib", "protoactor"))
	}))
}
