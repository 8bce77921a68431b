/** Shared by the NATS adapter's unit tests. */
export const invalid = (fn: () => unknown) => {
  try {
    fn()
  } catch (error) {
    return error as { code: string; message: string; details: string[] }
  }
  throw new Error('expected a MessagingError')
}
