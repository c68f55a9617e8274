package history

import (
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// scanSeries calls fn for each record of id under prefix p with time in [from, to), oldest first: one seek,
// then a sequential read. fn must not keep v.
func scanSeries(txn *badger.Txn, p, id string, from, to int64, fn func(ts int64, v []byte) error) error {
	pre := seriesPrefix(p, id)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: pre})
	defer it.Close()
	for it.Seek(appendKey(nil, p, id, max(from, 0))); it.Valid(); it.Next() {
		item := it.Item()
		k := item.Key()
		if len(k) != len(pre)+8 {
			continue
		}
		ts := keyTime(k)
		if ts >= to {
			break
		}
		if err := item.Value(func(v []byte) error { return fn(ts, v) }); err != nil {
			return fmt.Errorf("read %s%s at %d: %w", p, id, ts, err)
		}
	}
	return nil
}

// lastBucket reads id's newest bucket under prefix p (minute or hour); nil when there is none.
func lastBucket(txn *badger.Txn, p, id string) (*agg, error) {
	pre := seriesPrefix(p, id)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: pre, Reverse: true})
	defer it.Close()
	for it.Seek(appendKey(nil, p, id, maxTime)); it.Valid(); it.Next() {
		item := it.Item()
		k := item.Key()
		if len(k) != len(pre)+8 {
			continue
		}
		var a agg
		err := item.Value(func(v []byte) error {
			var err error
			a, err = decodeBucket(keyTime(k), v)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("read newest %s%s: %w", p, id, err)
		}
		return &a, nil
	}
	return nil, nil
}
