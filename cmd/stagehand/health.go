package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// runHealth is `stagehand health URL`: exits 0 when URL answers 2xx within
// 3 s. Container health checks use it on /metrics (the images carry no curl).
func runHealth(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return errors.New("usage: stagehand health URL (e.g. http://127.0.0.1:8690/metrics)")
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, args[0], nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("unhealthy: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("unhealthy: %s answered %s", args[0], resp.Status)
	}
	fmt.Fprintln(stdout, "healthy")
	return nil
}
