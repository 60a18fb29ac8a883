import { createContext, createElement, useCallback, useContext, useSyncExternalStore, type ReactElement, type ReactNode } from 'react';
import type { ConnectionState, TandemClient } from '../tandem-client.js';

const TandemContext = createContext<TandemClient | null>(null);

export interface TandemProviderProps {
  /** The client the hooks below use; its creator connects and closes it (the provider does neither). */
  client: TandemClient;
  children?: ReactNode;
}

/**
 * Makes `client` available to Tandem's hooks in `children`.
 *
 *   const client = connect({ url });
 *   root.render(createElement(TandemProvider, { client }, createElement(App)));
 */
export function TandemProvider({ client, children }: TandemProviderProps): ReactElement {
  // `.Provider` rather than React 19's `<Context value>`: the peer range includes React 18.
  return createElement(TandemContext.Provider, { value: client }, children);
}

/** The TandemClient of the nearest `TandemProvider`; throws outside one (a programmer error). */
export function useTandemClient(): TandemClient {
  const client = useContext(TandemContext);
  if (!client) throw new Error('Tandem hooks must be used inside a <TandemProvider client={…}>');
  return client;
}

/** The client's connection state; re-renders when it changes. */
export function useConnectionState(): ConnectionState {
  const client = useTandemClient();
  const subscribe = useCallback((notify: () => void) => client.on('state', () => notify()), [client]);
  const getState = useCallback(() => client.state, [client]);
  return useSyncExternalStore(subscribe, getState, getState);
}
