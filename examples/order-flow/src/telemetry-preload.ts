// `node --import <dist/telemetry-preload.js> <program>`: the SDK for a program whose code we do not
// own, the standalone `backplane-bridge` (it uses @opentelemetry/api like the packages). Configured
// by the standard variables (telemetryOptionsFromEnv).
import { startTelemetry, telemetryOptionsFromEnv } from './telemetry.js'

const telemetry = await startTelemetry(telemetryOptionsFromEnv())
// The bridge stops on SIGTERM by letting its event loop run dry: flush the spans at that point.
process.once('beforeExit', () => void telemetry.shutdown())
