//go:build race

package cloudcluster_test

const raceDetector = true
