package main

import (
	"encoding/json"
	"log"
	"net/http"
	"sync"
)

type counter struct {
	mu    sync.Mutex
	views map[string]int
}

func (c *counter) handle(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.views[r.URL.Path]++
	n := c.views[r.URL.Path]
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(map[string]int{"views": n}); err != nil {
		log.Printf("encode: %v", err)
	}
}

func main() {
	c := &counter{views: map[string]int{}}
	http.HandleFunc("/", c.handle)
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", nil))
}
