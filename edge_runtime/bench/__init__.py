"""`edgepose bench`: on-device latency / FPS measurement, comparable across devices."""
