package miners

import "context"

type commandIDKey struct{}

// WithCommandID tags ctx with the id of the command a driver call runs for (artifact fetches are bound to
// it).
func WithCommandID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, commandIDKey{}, id)
}

// CommandIDFrom is the command id WithCommandID set ("" outside a command).
func CommandIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(commandIDKey{}).(string)
	return id
}
