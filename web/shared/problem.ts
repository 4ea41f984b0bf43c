/** The gateway's errors are application/problem+json with a stable `code` (DESIGN.md). */
export interface Problem { status: number; code: string; title?: string; detail?: string; field?: string }

export class ProblemError extends Error {
  constructor(readonly problem: Problem) { super(problem.detail ?? problem.title ?? problem.code) }
}

/** Reads a fetch response as JSON, or throws a ProblemError (a failed fetch itself is the caller's to catch). */
export async function readJson<T>(res: Response): Promise<T> {
  const type = res.headers.get('content-type') ?? ''
  const body: unknown = type.includes('json') ? await res.json() : await res.text()
  if (res.ok) return body as T
  if (typeof body === 'object' && body !== null && 'code' in body) throw new ProblemError({ status: res.status, ...(body as Omit<Problem, 'status'>) })
  throw new ProblemError({ status: res.status, code: `http.${res.status}`, detail: typeof body === 'string' ? body.slice(0, 200) : undefined })
}
