window.addEventListener('error',function(e){var d=document.documentElement;d.setAttribute('data-js-errors',(d.getAttribute('data-js-errors')||'')+(e.message||'error')+'\n');});
