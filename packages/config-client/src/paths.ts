/**
 * Types for dotted-path access: `config.get('payment.timeoutMs')` is checked against the schema's
 * output type and returns the type at that path.
 */

/** Values that are served as they are: neither descended into by paths nor made read-only. */
type Scalar =
  | string
  | number
  | boolean
  | bigint
  | symbol
  | null
  | undefined
  | Date
  | RegExp
  | ((...args: never[]) => unknown)

/** Values that are not descended into by paths. */
type Leaf = Scalar | readonly unknown[] | ReadonlyMap<unknown, unknown> | ReadonlySet<unknown>

/** Depth counter: paths stop after 10 levels so that recursive schemas stay cheap to type-check. */
type Prev = [never, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]

/** Every dotted path into `T`: `'payment' | 'payment.timeoutMs' | ...`. */
export type ConfigPath<T, Depth extends number = 10> = [Depth] extends [never]
  ? never
  : T extends Leaf
    ? never
    : T extends object
      ? {
          [K in keyof T & string]-?: NonNullable<T[K]> extends Leaf
            ? K
            : K | `${K}.${ConfigPath<NonNullable<T[K]>, Prev[Depth]>}`
        }[keyof T & string]
      : never

type Step<T, K extends string> = K extends keyof NonNullable<T>
  ? NonNullable<T>[K] | (T extends null | undefined ? undefined : never)
  : undefined

/** The type at a dotted path of `T`; `| undefined` when an object on the way is optional. */
export type PathValue<T, P extends string> = P extends `${infer Head}.${infer Rest}`
  ? PathValue<Step<T, Head>, Rest>
  : Step<T, P>

/** `T` with every object and array read-only, as served (the objects are frozen). */
export type DeepReadonly<T> = T extends Scalar
  ? T
  : T extends ReadonlyMap<infer K, infer V>
    ? ReadonlyMap<K, DeepReadonly<V>>
    : T extends ReadonlySet<infer V>
      ? ReadonlySet<DeepReadonly<V>>
      : T extends readonly (infer U)[]
        ? readonly DeepReadonly<U>[]
        : { readonly [K in keyof T]: DeepReadonly<T[K]> }
