package ui

// The page has no failure modes of its own: the embedded files are fixed at build time, and everything it
// shows comes from the API, whose errors it displays.
