// Namespaces on the shared test dev server.
/** Incidents hold every change in their namespace; the incident tests get one of their own. */
export const ISOLATED_NAMESPACE = 'dbchange-isolated';
