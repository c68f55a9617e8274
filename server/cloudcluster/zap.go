package cloudcluster

import "go.uber.org/zap"

// quietZap keeps the etcd client's own logger to errors (its info lines repeat every reconnect).
func quietZap() *zap.Logger {
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(zap.ErrorLevel)
	l, err := cfg.Build()
	if err != nil {
		return zap.NewNop()
	}
	return l
}
