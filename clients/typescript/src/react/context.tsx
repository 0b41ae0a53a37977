"use client";

/**
 * `<OrchestratorProvider>`: gives the hooks their client and their TanStack `QueryClient`, so
 * the hooks take no URL. The hooks pass that `QueryClient` to TanStack explicitly instead of
 * installing a `QueryClientProvider`: an app's own provider (and its own queries) below this
 * one are left alone, and giving it `queryClient={theAppsClient}` shares one cache.
 */
import { QueryClient } from "@tanstack/react-query";
import { createContext, useContext, useMemo, useState, type ReactNode } from "react";
import { createClient, type ClientOptions, type OrchestratorClient } from "../client.js";

export interface OrchestratorContextValue {
  client: OrchestratorClient;
  queryClient: QueryClient;
}

const OrchestratorContext = createContext<OrchestratorContextValue | null>(null);

export type OrchestratorProviderProps = (
  | {
      /** Where the service is, e.g. `http://127.0.0.1:8080`. */
      baseUrl: string;
      /** Options for the client made from `baseUrl` (ignored when `client` is given). */
      clientOptions?: Omit<ClientOptions, "baseUrl">;
      client?: undefined;
    }
  | { client: OrchestratorClient; baseUrl?: string; clientOptions?: undefined }
) & {
  /** The TanStack cache to use; one is made (and kept for the provider's life) when absent. */
  queryClient?: QueryClient;
  children?: ReactNode;
};

export function OrchestratorProvider(props: OrchestratorProviderProps) {
  const { baseUrl, client, clientOptions, queryClient, children } = props;
  // Made once per mounted provider: a new client or cache on every render would drop the
  // ETag copies and every query. A later change of `baseUrl` is not followed (remount with a
  // `key` to switch services).
  const [own] = useState(() => ({
    client: client ? undefined : createClient({ ...clientOptions, baseUrl: baseUrl as string }),
    queryClient: queryClient ? undefined : new QueryClient(),
  }));
  const value = useMemo<OrchestratorContextValue>(
    () => ({
      client: client ?? (own.client as OrchestratorClient),
      queryClient: queryClient ?? (own.queryClient as QueryClient),
    }),
    [client, queryClient, own],
  );
  return <OrchestratorContext.Provider value={value}>{children}</OrchestratorContext.Provider>;
}

/** The provider's client and `QueryClient`; throws outside an `<OrchestratorProvider>`. */
export function useOrchestrator(): OrchestratorContextValue {
  const value = useContext(OrchestratorContext);
  if (!value) throw new Error("dota-orchestrator hooks need an <OrchestratorProvider> above them");
  return value;
}
