package witness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"domicile/checkpoint"
)

// FileState is a [State] kept in one JSON file, rewritten atomically on
// every Store (write a temporary file, fsync it, rename it over the old
// one, fsync the directory). It is safe for concurrent use within one
// process; two processes must not share a file.
type FileState struct {
	path string

	// mu guards logs, the file's contents once loaded.
	mu   sync.Mutex
	logs map[string]fileLog
}

// fileLog is one log's entry in the state file.
type fileLog struct {
	Checkpoint string `json:"checkpoint"`
}

type fileContents struct {
	Logs map[string]fileLog `json:"logs"`
}

// MaxStateFileSize bounds the state file read by a FileState.
const MaxStateFileSize = 16 << 20

// NewFileState returns a FileState stored at path. The file is read on
// first use; a missing file is an empty state.
func NewFileState(path string) *FileState {
	return &FileState{path: path}
}

func (s *FileState) load() error {
	if s.logs != nil {
		return nil
	}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		s.logs = map[string]fileLog{}
		return nil
	}
	if err != nil {
		return fmt.Errorf("witness: read state: %w", err)
	}
	if len(b) > MaxStateFileSize {
		return errors.New("witness: state file too large")
	}
	var c fileContents
	if err := json.Unmarshal(b, &c); err != nil {
		return fmt.Errorf("witness: malformed state file %s: %v", s.path, err)
	}
	if c.Logs == nil {
		c.Logs = map[string]fileLog{}
	}
	s.logs = c.Logs
	return nil
}

// Load implements [State].
func (s *FileState) Load(ctx context.Context, origin string) (LogState, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.load(); err != nil {
		return LogState{}, false, err
	}
	l, ok := s.logs[origin]
	if !ok {
		return LogState{}, false, nil
	}
	body, err := checkpoint.Body([]byte(l.Checkpoint))
	if err != nil {
		return LogState{}, false, fmt.Errorf("witness: malformed state for %s", origin)
	}
	c, err := checkpoint.Parse(body)
	if err != nil || c.Origin != origin {
		return LogState{}, false, fmt.Errorf("witness: malformed state for %s", origin)
	}
	return LogState{Checkpoint: []byte(l.Checkpoint), Size: c.Size, Hash: c.Hash}, true, nil
}

// Store implements [State]; the state is durable when it returns nil. Only
// st.Checkpoint is kept: Load derives Size and Hash from it.
func (s *FileState) Store(ctx context.Context, origin string, st LogState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.load(); err != nil {
		return err
	}
	next := make(map[string]fileLog, len(s.logs)+1)
	for k, v := range s.logs {
		next[k] = v
	}
	next[origin] = fileLog{Checkpoint: string(st.Checkpoint)}
	b, err := json.MarshalIndent(fileContents{Logs: next}, "", "  ")
	if err != nil {
		return fmt.Errorf("witness: encode state: %v", err)
	}
	if err := writeFileAtomic(s.path, append(b, '\n')); err != nil {
		return fmt.Errorf("witness: write state: %w", err)
	}
	s.logs = next
	return nil
}

// writeFileAtomic replaces path with data so that a crash leaves either the
// old or the new contents, never a mix.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
