// Package promx registers Prometheus collectors so that two components sharing one registry (two nodes in one
// test process, a node restarted in place) reuse the series instead of panicking.
package promx

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c on reg and returns the collector to use: c itself, or the identical collector
// registered earlier. A nil reg registers nothing and returns c. Any other registration error is a programming
// error (two different metrics with one name) and panics.
func Register[T prometheus.Collector](reg prometheus.Registerer, c T) T {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(T); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

// Tolerant wraps reg so that registering a collector whose metrics are already registered is not an error
// (the earlier collector keeps serving them). For code that calls MustRegister itself, such as
// actors.NewMetrics, when two components of one process share a registry.
func Tolerant(reg prometheus.Registerer) prometheus.Registerer {
	if reg == nil {
		return nil
	}
	return tolerant{reg}
}

type tolerant struct{ prometheus.Registerer }

func (t tolerant) Register(c prometheus.Collector) error {
	err := t.Registerer.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		return nil
	}
	return err
}

func (t tolerant) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := t.Register(c); err != nil {
			panic(err)
		}
	}
}
