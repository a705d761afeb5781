package commitstats

import (
	"sync"
	"testing"
	"time"
)

func TestCountersConcurrent(t *testing.T) {
	var c Counters
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				c.Add(3, 2*time.Millisecond, time.Millisecond)
				c.Stats()
			}
		}()
	}
	wg.Wait()
	st := c.Stats()
	if st.Groups != 4000 || st.Batches != 12000 || st.Busy != 8*time.Second || st.Commit != 4*time.Second {
		t.Fatalf("stats %+v", st)
	}
}
